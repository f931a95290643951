"""PostgreSQL aggregates the ORM does not ship: percentile_cont and durations in seconds."""

from django.db.models import Aggregate, F, FloatField, Func


class PercentileCont(Aggregate):
    """percentile_cont(p) WITHIN GROUP (ORDER BY expr): linear interpolation between ranks."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, percentile: float, **extra):
        if not 0 <= percentile <= 1:
            raise ValueError("percentile must be between 0 and 1")
        super().__init__(expression, percentile=float(percentile), **extra)


class Seconds(Func):
    """EXTRACT(EPOCH FROM later - earlier): a difference of UTC instants in seconds."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "
    output_field = FloatField()

    def __init__(self, later: str, earlier: str, **extra):
        super().__init__(F(later), F(earlier), **extra)
