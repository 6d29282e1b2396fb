"""In-memory core: autoencoder and clustering fits on arrays, objectives and anomaly scores, shared by the stages,
the anomaly detector and the DeepClustering estimator.

(This file makes ``netbuilder.core`` a regular package, so that ``packages = find:`` puts it in the wheel.)
"""
