"""Regenerate the torch-written fixtures in this folder (needs torch; the tests never run it).

    python3.11 -m venv /tmp/tv && /tmp/tv/bin/pip install torch numpy
    cd tests/data && /tmp/tv/bin/python make_torch_fixtures.py

Writes torch_params_ema{,_legacy}.pth + torch_params_ema_expected.npz (reader: dtypes, views,
Parameters, zip and legacy formats) and torch_compact_x4.pth, torch_rrdb_x{2,1}.pth +
torch_sr_outputs.npz: tiny networks written here in torch (own code), saved the way Real-ESRGAN
releases are ({"params"/"params_ema": state_dict}), with torch's own output on one input.
Made with torch 2.13.0+cpu.
"""
import collections

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
base = torch.randn(4, 6)
sd = collections.OrderedDict()
sd["module.conv.weight"] = torch.randn(3, 2, 3, 3)
sd["module.conv.bias"] = torch.nn.Parameter(torch.randn(3))
sd["module.half"] = torch.randn(2, 5).half()
sd["module.bf16"] = torch.randn(7).bfloat16()
sd["module.transposed"] = base.t()            # non-contiguous strides
sd["module.slice"] = base[1:3, 2:5]           # offset + strides into a shared storage
sd["module.base"] = base
sd["module.count"] = torch.tensor(5, dtype=torch.int64)
sd["module.double"] = torch.randn(2, 2, dtype=torch.float64)
ckpt = {"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}, "iter": 1000}
torch.save(ckpt, "torch_params_ema.pth")
torch.save(ckpt, "torch_params_ema_legacy.pth", _use_new_zipfile_serialization=False)
np.savez("torch_params_ema_expected.npz", **{k: v.detach().float().numpy() if v.is_floating_point() else v.numpy() for k, v in sd.items()})

torch.manual_seed(0)

class Compact(nn.Module):
    def __init__(self, cin=3, feat=8, num_conv=2, scale=4):
        super().__init__()
        self.scale = scale
        layers = [nn.Conv2d(cin, feat, 3, 1, 1), nn.PReLU(feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(feat, feat, 3, 1, 1), nn.PReLU(feat)]
        layers += [nn.Conv2d(feat, cin * scale * scale, 3, 1, 1)]
        self.body = nn.ModuleList(layers)
    def forward(self, x):
        y = x
        for m in self.body:
            y = m(y)
        return F.pixel_shuffle(y, self.scale) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

class RDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        for k in range(1, 5):
            setattr(self, f"conv{k}", nn.Conv2d(nf + (k - 1) * gc, gc, 3, 1, 1))
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
    def forward(self, x):
        feats = [x]
        for k in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, f"conv{k}")(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x

class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = RDB(nf, gc), RDB(nf, gc), RDB(nf, gc)
    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

class RRDBNet(nn.Module):
    def __init__(self, c=3, nf=8, gc=4, nb=2, scale=2):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(c * {1: 16, 2: 4}.get(scale, 1), nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        for n in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
            setattr(self, n, nn.Conv2d(nf, nf, 3, 1, 1))
        self.conv_last = nn.Conv2d(nf, c, 3, 1, 1)
    def forward(self, x):
        if self.scale in (1, 2):
            x = F.pixel_unshuffle(x, 4 // self.scale)
        f = self.conv_first(x)
        f = f + self.conv_body(self.body(f))
        f = F.leaky_relu(self.conv_up1(F.interpolate(f, scale_factor=2, mode="nearest")), 0.2)
        f = F.leaky_relu(self.conv_up2(F.interpolate(f, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(f), 0.2))

def perturb(net):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net

x = torch.rand(1, 3, 8, 12)
nets = {"torch_compact_x4": (Compact(), "params"), "torch_rrdb_x2": (RRDBNet(nf=4, gc=2, scale=2), "params_ema"),
        "torch_rrdb_x1": (RRDBNet(nf=4, gc=2, nb=1, scale=1), "params_ema")}
out = {"input": x.numpy()}
for name, (net, key) in nets.items():
    perturb(net).eval()
    torch.save({key: net.state_dict()}, f"{name}.pth")
    with torch.no_grad():
        out[name] = net(x).numpy()
np.savez_compressed("torch_sr_outputs.npz", **out)
print({k: v.shape for k, v in out.items()})
