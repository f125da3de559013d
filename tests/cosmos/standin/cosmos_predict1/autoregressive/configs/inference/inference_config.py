"""Stand-in of cosmos-predict1's sampling config (the fields dfbench sets)."""

from dataclasses import dataclass


@dataclass
class SamplingConfig:
    echo: bool = False
    temperature: float = 1.0
    top_p: float = 0.8
    compile_sampling: bool = True
