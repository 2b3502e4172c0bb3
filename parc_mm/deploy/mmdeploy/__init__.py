"""mmdeploy for ParC models. A deploy config imports this package (``custom_imports =
dict(imports=['parc_mm.deploy.mmdeploy'])``, as the shipped ones in ``configs/deploy/`` do), so
mmdeploy's own tools work with it too. Importing it runs ``parc_mm/__init__`` first (the
parent package; its :mod:`parc_mm.compat` fixes mmdeploy 1.3.1 on this torch and refuses
dynamic height / width for ParC graphs) and registers :mod:`.rewriters`; :mod:`.pipeline` is
the deploy / evaluate / int8 pipeline of ``tools/deploy/deploy.py``."""
from . import rewriters  # noqa: F401  (registers the rewriters)
