"""Training: takes a GQA-REX store and gives a run directory (config, checkpoints, metrics log).

``data`` turns the store into torch batches, ``config`` holds the training options (``TrainConfig``),
``sampler`` the data order, ``checkpoints`` what a resumed run needs, ``loop`` the steps of ``train``
(multi-task, explanation-only, VQA fine-tuning), ``cli`` the ``train`` command (flags made from
``TrainConfig``). A finished run is read back without any of this: ``rexlib.model.pretrained``.
"""
