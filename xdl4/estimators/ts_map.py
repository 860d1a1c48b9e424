def ts_map(*args, **kwargs):
    raise NotImplementedError
