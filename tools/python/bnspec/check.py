"""`python -m bnspec.check GOLDEN RESULTS`: check outputs against golden vectors, NumPy only."""
from bnspec.checker import main

if __name__ == "__main__":
    main()
