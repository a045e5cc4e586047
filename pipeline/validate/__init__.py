"""The validate stage: mapped text → what would be sent to Kayse, plus every rejected row and why.

Public API: `validate(mapped, spec)`. The normalizers (`normalize`, `phones`) and the output
contract (`schema`) are importable for tests and docs. This stage never touches the network.
"""

from pipeline.validate.core import validate
from pipeline.validate.schema import case_contract, case_schema, client_contract, client_schema

__all__ = ["case_contract", "case_schema", "client_contract", "client_schema", "validate"]
