"""Clara Train's AutoML components, for MMARs brought from Clara unchanged: the controller
and handler contracts a user's own classes follow, our built-in handlers, and the loading
of config_automl.json's `controller` / `handlers` entries. See docs/clara.md."""
from .controller import Controller, ControllerAlgorithm, ControllerContext, JobOutcome
from .handler import EVENTS, BadArgument, Handler, HandlerContext, JobInfo, Recommendation
from .mmar_handler import JobLayout, MMARHandler
from .stats import MLflowHandler, MMARStatsHandler, MMARTensorboardHandler, StatsHandler

__all__ = ["Controller", "ControllerAlgorithm", "ControllerContext", "JobOutcome", "EVENTS", "BadArgument",
           "Handler", "HandlerContext", "JobInfo", "Recommendation", "JobLayout", "MMARHandler", "MLflowHandler",
           "MMARStatsHandler", "MMARTensorboardHandler", "StatsHandler"]
