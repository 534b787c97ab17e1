"""The sequence model (torch lives only in this subpackage): ZILN loss, network, estimator."""
