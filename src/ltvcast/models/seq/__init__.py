"""The sequence model (torch lives only in this subpackage).

``loss`` (ZILN and Poisson likelihoods), ``network`` (Conv1D -> LSTM -> heads), ``inputs``
(period grid, scalers by column name, profiles), ``forward`` (running the network),
``training`` (origins, loop, calibration), ``rollout`` (simulation), ``explain`` (integrated
gradients) and ``estimator`` (:class:`~ltvcast.models.seq.estimator.SeqForecaster`).
"""
