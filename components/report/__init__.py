"""The comparison report built from the stages' metrics files."""
