"""An example boardflow plugin package, installed by the registry test to prove entry-point discovery."""
