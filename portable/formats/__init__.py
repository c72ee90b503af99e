"""One module per format: sniff, load, save (for targets) and run. Imported by the registry on first use.

"""
