"The science: the method's three stages, item models, calibration, scoring, linking, DIF, adaptive testing, score tables and diagnostics."
