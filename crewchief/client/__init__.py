"""The library facade: :class:`Crewchief`, :class:`OperationHandle` and the request validator."""
