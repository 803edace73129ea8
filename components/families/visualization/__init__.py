"""The visualization family: attribution methods and unit-level analyses of trained networks."""
