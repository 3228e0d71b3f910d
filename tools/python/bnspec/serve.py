"""`python -m bnspec.serve MODULE:CLASS [ARGS…]` (or FILE.py:CLASS): serve an adapter."""
from bnspec.target import main

if __name__ == "__main__":
    main()
