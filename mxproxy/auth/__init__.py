"""Sign-in building blocks: OAuth2 client check, our ES256 access tokens and their key ring,
and local validation of Azure AD id_tokens. No HTTP here; the API maps the typed errors."""
