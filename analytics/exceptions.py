"""Analytics errors with stable codes."""

from members.exceptions import DomainError


class NpsAnswerInvalid(DomainError):
    code = "nps_answer_invalid"
    status = 400
    title = "The NPS answer is not valid"
