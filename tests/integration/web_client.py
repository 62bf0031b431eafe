"""Signing in to a node's pages over httpx, as the page tests do, and reading hidden fields."""

from __future__ import annotations

import re

import httpx

__all__ = ["hidden", "sign_in"]


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> str:
    """Sign in; returns the session's CSRF token (from the start page's forms)."""
    form = await client.get("/sign-in")
    assert form.status_code == 200
    response = await client.post(
        "/sign-in", data={"token": token, "csrf": hidden(form.text, "csrf"), "next": ""}
    )
    assert response.status_code == 303, response.text
    home = await client.get(response.headers["location"])
    assert home.status_code == 200, home.text
    return hidden(home.text, "csrf")
