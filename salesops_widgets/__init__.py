"""salesops-widgets: sales-ops analytics on your CRM data.

Load a CRM export or warehouse into canonical tables with a data-quality report::

    from salesops_widgets import load
    data = load("data/samples/default")
    data.report.summary_frame()
"""

from .data import SalesData, load, validate
from .errors import SalesOpsError

__version__ = "0.1.0"

__all__ = ["SalesData", "load", "validate", "SalesOpsError", "__version__"]
