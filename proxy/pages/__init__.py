"""The public pages: the playground at ``/``, the API docs at ``/docs`` with ``/openapi.json``
(described in ``apidoc``, ``apidoc_openai`` and ``apidoc_vision``, with the code snippets they
show), and the plumbing every page shares (Jinja2 templates from ``templates/``, static files from
``static/``, security headers). The admin dashboard's pages are in ``proxy.admin``."""
