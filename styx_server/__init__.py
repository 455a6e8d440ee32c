"""The composition root: the one place that sees every part (core, API, Ray) and puts them together.

- `startup`: opening the store, the port check, ServiceError;
- `auth_mode`: which authentication and authorization the service runs with;
- `systems`: the actor system chosen by settings (`STYX_ACTOR_SYSTEM`);
- `service`: the app over a system, served by uvicorn (`styx serve`) or from a thread (tests);
- `cli`: the `styx` script (the client's commands plus `serve`).
"""
