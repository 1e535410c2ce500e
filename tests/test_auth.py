"""Single-flight token refresh, with an injected mint and a fake clock."""

from __future__ import annotations

import asyncio

from exporter.client.auth import TokenProvider, explain_token_rejection


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_mint(lifetime: float = 600.0, delay: float = 0.01):
    calls = []

    async def mint() -> tuple[str, float]:
        calls.append(1)
        await asyncio.sleep(delay)  # give other callers time to pile up behind the lock
        return f"token-{len(calls)}", lifetime

    return mint, calls


async def test_concurrent_callers_share_one_mint() -> None:
    """64 callers that find no token cause exactly one token request."""
    mint, calls = counting_mint()
    tokens = TokenProvider(mint, refresh_margin_s=60, clock=FakeClock())
    got = await asyncio.gather(*(tokens.get() for _ in range(64)))
    assert len(calls) == 1
    assert {t.value for t in got} == {"token-1"}


async def test_refresh_happens_a_margin_before_expiry() -> None:
    """A token is replaced once the clock passes expiry minus the margin, not before."""
    mint, calls = counting_mint(lifetime=600.0)
    clock = FakeClock()
    tokens = TokenProvider(mint, refresh_margin_s=60, clock=clock)
    first = await tokens.get()
    clock.now += 539
    assert await tokens.get() is first
    clock.now += 2
    assert (await tokens.get()).value == "token-2"
    assert len(calls) == 2


async def test_margin_never_exceeds_a_quarter_of_a_short_lifetime() -> None:
    """A 5-minute margin on a 10 s token still lets the token live 7.5 s."""
    mint, _calls = counting_mint(lifetime=10.0)
    clock = FakeClock()
    tokens = TokenProvider(mint, refresh_margin_s=300, clock=clock)
    first = await tokens.get()
    clock.now += 7.4
    assert await tokens.get() is first
    clock.now += 0.2
    assert await tokens.get() is not first


async def test_invalidate_only_drops_the_failed_token() -> None:
    """64 requests that saw the same rejected token cause one refresh, not 64."""
    mint, calls = counting_mint()
    tokens = TokenProvider(mint, refresh_margin_s=60, clock=FakeClock())
    stale = await tokens.get()

    async def replay() -> str:
        tokens.invalidate(stale)
        return (await tokens.get()).value

    values = await asyncio.gather(*(replay() for _ in range(64)))
    assert len(calls) == 2
    assert set(values) == {"token-2"}


def test_token_repr_hides_the_value() -> None:
    """A token's repr never shows the bearer value."""
    from exporter.client.auth import Token

    token = Token(value="s3cr3t-bearer", lifetime_s=60, refresh_at=1, generation=1)
    assert "s3cr3t" not in repr(token) and "s3cr3t" not in str(token)


def test_rejection_diagnosis_names_the_checks_in_order() -> None:
    """invalid_client explains pair, region, grant type, and that SAML does not matter."""
    text = explain_token_rejection(
        status=400,
        error="invalid_client",
        description="authentication failed",
        login_url="https://login.mypurecloud.com",
    )
    order = [text.index(k) for k in ("secret", "region", "Client Credentials", "SAML")]
    assert order == sorted(order)
    assert "\n" not in text
