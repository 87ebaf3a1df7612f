"""The web API, one module per resource: core, probabilities, students, outcomes, models, health, access and the app."""
