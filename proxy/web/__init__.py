"""HTTP plumbing every route shares, below the features: the error shape and the one place errors
become HTTP (``errors``, with OpenAI's shape on ``/v1/...`` from ``openai_errors``), JSON answers
(``responses``), the bodies a route accepts (``bodies``), request ids and counting (``observe``,
``metrics``), the drain on SIGTERM (``drain``), serving an app (``runner``), the connection's
deadlines and bounds, the parser's errors in the JSON shape and requests answered where they were
parsed (``protocol``), what the hot path reads of a request (``view``), a file's bytes sent as an
answer's body with sendfile (``sendfile``), and claiming the port before workers start
(``listen``). No route lives here: the pages are in ``proxy.pages``, the admin API and dashboard
in ``proxy.admin``."""
