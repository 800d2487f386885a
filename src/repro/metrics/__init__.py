"""Metrics: sharpness, Hessian and NTK top eigenvalues."""
