"""DIP catalogues: the local catalogue builder (``_build``) and, from the DIP branch, the format."""
