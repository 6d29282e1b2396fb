"""The stages of the main job: pretrain → cluster → metrics → visualize (and run, which chains them)."""
