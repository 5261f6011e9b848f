"""The tqdm progress bar as vssr uses it (signatures from tqdm 4.70's `tqdm.tqdm`)."""

from typing import IO, Any

class tqdm:
    def __init__(
        self,
        iterable: Any = None,
        desc: str | None = None,
        total: float | None = None,
        leave: bool | None = True,
        file: IO[str] | None = None,
        ncols: int | None = None,
        mininterval: float = 0.1,
        maxinterval: float = 10.0,
        miniters: float | None = None,
        ascii: bool | str | None = None,
        disable: bool | None = False,
        unit: str = "it",
        unit_scale: bool | float = False,
        dynamic_ncols: bool = False,
        smoothing: float = 0.3,
        bar_format: str | None = None,
        initial: float = 0,
        position: int | None = None,
        postfix: Any = None,
        unit_divisor: float = 1000,
        **kwargs: Any,
    ) -> None: ...
    def update(self, n: float | None = 1) -> bool | None: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...
    def refresh(self, nolock: bool = False, lock_args: tuple[Any, ...] | None = None) -> None: ...
    def close(self) -> None: ...
