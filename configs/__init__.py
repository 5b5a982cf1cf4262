"""The configs shipped with the package: `--config NAME[:ARG]` loads NAME.py from here (e.g. `modeformer_lrs2`,
`tiny:synthetic`), and a file path works as well (`--config my_configs/x.py:ARG`). Each file defines
get_config(arg) -> ml_collections.ConfigDict; modeformer_jax.config_loading loads and validates them.

In the repository this folder is `configs/`; the package sees it as modeformer_jax/configs (a link), so a
checkout, an editable install and a built wheel all find the same files.
"""
