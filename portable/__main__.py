"""`python -m portable` runs the `portable` command."""
from .cli import main

if __name__ == "__main__":
    main()
