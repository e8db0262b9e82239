"""HTTP plumbing every route shares, below the features: the error shape and the one place errors
become HTTP (``errors``, with OpenAI's shape on ``/v1/...`` from ``openai_errors``), JSON answers
(``responses``), request ids and counting (``observe``, ``metrics``), and serving an app
(``runner``). No route lives here: the pages are in ``proxy.pages``, the admin API and dashboard in
``proxy.admin``."""
