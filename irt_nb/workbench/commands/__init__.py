"The `irt-nb` commands, one module per group: data and fit, serving, the model registry, monitoring, psychometrics, erasure and the notebook workbench."
