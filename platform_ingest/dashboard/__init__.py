"""The web dashboard (`borne dashboard`): satisfaction indicators per region, département and site, the
moderated comments, for accounts whose role limits what they see. Starlette, Jinja2 templates, served by
uvicorn; every asset is served by the app itself.

- `accounts`: roles, scopes, argon2 password hashes, `borne dashboard user`;
- `figures`: the page figures from the store's aggregates (rates hidden under 30 ratings);
- `throttle`: login failures counted per account and per address;
- `app`: the Starlette application (`create_app`).
"""
