"""The monitoring dashboard: three panels (ops, drift, output) under the open alerts, the failover
state and the deployed model version, read from the published snapshot.

One view-model (:func:`api.dashboard.model.load_dashboard`) feeds both the dashboard process
(``GET /dashboard``, :mod:`api.dashboard.app`, ``lendguard dashboard serve``; not the scoring API)
and the offline export (``lendguard dashboard --out FILE``); :mod:`api.dashboard.page` renders it
as one HTML page whose charts are SVG drawn on
the server (:mod:`api.dashboard.charts`): no script from anywhere, no CDN, opens offline.
"""
