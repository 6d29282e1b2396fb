"""NetworkBuilder: a spec (either format, resolved or not) → an :class:`Autoencoder`."""
from __future__ import annotations

from typing import Any, Iterable

from ..errors import ArchError
from .model import Autoencoder
from .plan import Plan
from .spec import resolve_with_context

MAX_PARAMS = 500_000_000  # 2 GB of float32 weights, ~8 GB with Adam state and gradients


class NetworkBuilder:
    """Validates a spec and infers its shapes on construction; :meth:`build` allocates the modules.

    ``input_shape`` replaces the spec's input shape (e.g. a folder dataset with other image sizes); the network
    is re-planned for it and errors still name the arch and the JSON path.
    """

    def __init__(self, spec: dict[str, Any], input_shape: Iterable[int] | None = None,
                 source: str | None = None) -> None:
        self.spec, self.plan = resolve_with_context(spec, input_shape=tuple(input_shape) if input_shape else None)
        self.source = source  # the archs file, named in errors raised by build()

    @property
    def resolved(self) -> dict[str, Any]:
        """The resolved spec the model is built from."""
        return self.spec

    def dry_run(self) -> Plan:
        """The shape plan: every layer with its input/output shape and parameter count, no weights."""
        return self.plan

    def build(self) -> Autoencoder:
        """A freshly initialised autoencoder; refuses more than :data:`MAX_PARAMS` parameters before allocating
        (a one-line error rather than an out-of-memory crash)."""
        n = int(self.plan.params)
        if n > MAX_PARAMS:
            count = f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"
            where = f"{self.source}: " if self.source else ""
            raise ArchError(f"{where}arch '{self.spec.get('name', '?')}' would have {count} parameters "
                            f"(more than {MAX_PARAMS:,}); check the layer sizes")
        return Autoencoder(self.spec, self.plan)


def build_autoencoder(spec: dict[str, Any], input_shape: tuple[int, ...] | None = None,
                      source: str | None = None) -> Autoencoder:
    """Build the autoencoder of ``spec``, optionally for another ``input_shape``. Errors are one-line ArchErrors
    (naming ``source``, the archs file, when given)."""
    return NetworkBuilder(spec, input_shape, source=source).build()
