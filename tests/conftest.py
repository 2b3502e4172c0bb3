import os
import sys

# tests import the shared harness as `tests.harness`
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('OMP_NUM_THREADS', '2')
