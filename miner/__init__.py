"""mlflow-miner: how do ML projects actually use experiment tracking?"""

__version__ = "0.1.0"
