"""``python -m dfbench``: the command line, so ``torchrun -m dfbench run ...`` can start it."""

from dfbench.cli import main

if __name__ == "__main__":
    main()
