"""Province mode (issue 16): the counties' upward pushes received, loaded into the lake, measured
and ranked. Plain functions per module; thin Dagster assets beside them."""
