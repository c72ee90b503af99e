"""One module per converter edge (`source -> target`). Imported by the registry on first use.

"""
