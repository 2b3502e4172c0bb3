"""The export command for ONNX Runtime, under its earlier name:
``tools/deploy/export_onnx.py CONFIG [CHECKPOINT] --out DIR ...`` is
``tools/deploy/export.py CONFIG [CHECKPOINT] --work-dir DIR --runtime onnxruntime ...``
(see that file)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from export import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
