"""Training: takes a GQA-REX store and gives a run directory (config, checkpoints, metrics log).

``data`` turns the store into torch batches, ``loop`` holds the training configuration, the sampler,
checkpoints and the loop (multi-task, explanation-only, VQA fine-tuning), ``cli`` the ``train`` command.
"""
