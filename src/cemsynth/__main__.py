"""``python -m cemsynth`` (also what ``torchrun -m cemsynth`` runs)."""

from cemsynth.cli import main

if __name__ == "__main__":
    main()
