"""Generate realistic AnalyticsConversation records (as dicts) from a seeded random stream.

Used by `genesys_sandbox.data`; the shape follows genesys-api.md §5.3 and only uses enum values
the official SDK (PureCloudPlatformClientV2 269) accepts. Speed matters here (100,000 records in a
few seconds), so builders write dict literals directly, draw from `random()` rather than the slower
helpers, and format every distinct instant once.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from genesys_sandbox.ids import IdSource
from genesys_sandbox.orgdata import (
    CALLBACK,
    CAMPAIGN,
    CHAT,
    EMAIL,
    MESSAGE,
    PEOPLE,
    QUANTILES,
    VOICE,
    Media,
    Org,
)
from genesys_sandbox.schedule import Schedule

Record = dict[str, Any]
_PROVIDERS = {"voice": "Edge", "message": "PureCloud Messaging", "email": "PureCloud Email",
              "chat": "PureCloud Webchat v2", "callback": "PureCloud Callback"}  # fmt: skip
_MESSAGE_TYPES = ("sms", "webmessaging", "whatsapp", "facebook")
_SUBJECTS = ("Order status", "Invoice question", "Cannot log in", "Change of address", "Refund")
_NOTES = ("Resolved on first contact", "Sent follow-up email", "Escalated to tier 2")
_LANGUAGES = ("en-us", "en-us", "en-us", "en-us", "es-us", "fr-ca")
_CALLER_NAMES = ("Mobile Caller", "WIRELESS CALLER", "Unknown")


@dataclass(slots=True)
class _Leg:
    """One queue-then-agent stint of a routed conversation; instants in epoch ms.

    The `*_at` strings are the same instants formatted, once, as several records share them.
    """

    queue: tuple[str, str, str]
    agent: int  # index into Org.agents
    queued: int
    queued_at: str
    alert: int
    answer: int  # end of the queue wait (the abandon instant when abandoned)
    answer_at: str
    hold: tuple[int, int] | None
    talk_end: int
    talk_end_at: str
    wrap_end: int
    abandoned: bool = False


class HandlingLog:
    """Who handled what when: (agent index, alert or dial instant, wrap-up end) per agent leg."""

    __slots__ = ("agents", "ends", "starts")

    def __init__(self) -> None:
        self.agents = array("H")
        self.starts = array("q")  # epoch ms
        self.ends = array("q")

    def __len__(self) -> int:
        return len(self.agents)

    def add(self, agent: int, start: int, end: int) -> None:
        self.agents.append(agent)
        self.starts.append(start)
        self.ends.append(end)

    def drop_started_after(self, first: int, cut: int) -> None:
        """Forget entries from ``first`` on that start after ``cut`` (legs an ongoing
        conversation's snapshot does not show yet)."""
        entries = zip(self.agents[first:], self.starts[first:], self.ends[first:], strict=True)
        kept = [(a, s, e) for a, s, e in entries if s <= cut]
        for column in (self.agents, self.starts, self.ends):
            del column[first:]
        for entry in kept:
            self.add(*entry)


class RecordGenerator:
    """Builds one conversation record at a time, drawing from one seeded stream in order.

    Queue legs are answered by members of the queue on queue at the alert (``schedule``);
    every agent leg is written to ``handling`` for the status history.
    """

    def __init__(
        self, rng: random.Random, org: Org, fmt: Callable[[int], str], schedule: Schedule
    ) -> None:
        self._rng = rng
        self._schedule = schedule
        self.handling = HandlingLog()
        self._r = r = rng.random
        # A closure, not a method: it runs ten times per conversation.
        self._pick: Callable[[Sequence[Any]], Any] = lambda seq: seq[int(r() * len(seq))]
        self._org = org
        self._fmt = fmt
        self._divisions: list[str] = []
        self._mos: tuple[float, float] | None = None
        self._customer_name = ""
        self._take_ids = IdSource(rng).take

    def conversation(self, start_ms: int) -> tuple[Record, int]:
        """One finished conversation starting at `start_ms`, and its end instant."""
        conversation_id = self._take_ids(1)[0]
        self._divisions, self._mos = [], None
        parts, end, served, direction, initiator = self._participants(start_ms)
        f = self._fmt
        record: Record = {
            "conversationEnd": f(end),
            "conversationId": conversation_id,
            "conversationInitiator": initiator,
            "conversationStart": f(start_ms),
            "customerParticipation": True,
            "divisionIds": self._division_ids(),
        }
        if self._mos is not None:
            record["mediaStatsMinConversationMos"], record["mediaStatsMinConversationRFactor"] = (
                self._mos
            )
        record["originatingDirection"] = direction
        record["participants"] = parts
        if served:
            record["selfServed"] = True
        return record, end

    def _division_ids(self) -> list[str]:
        divisions = self._divisions  # those of the queues the conversation went through
        if not divisions:
            return [self._org.home_division]
        return divisions[:1] if len(divisions) == 1 else sorted(set(divisions))

    def _participants(self, t0: int) -> tuple[list[Record], int, bool, str, str]:
        # The mix of a blended contact center: mostly inbound voice, then digital, then outbound.
        x = self._r()
        if x < 0.55:
            return (*self._routed(VOICE, self._voice_ctx(), t0, 0), "inbound", "customer")
        if x < 0.63:
            return (*self._agent_dial(t0), False, "outbound", "agent")
        if x < 0.68:
            ctx = self._campaign_ctx()
            return (*self._routed(CAMPAIGN, ctx, t0, 1_000 + int(self._r() * 20_000)),
                    "outbound", "campaign")  # fmt: skip
        if x < 0.82:
            return (*self._routed(MESSAGE, self._message_ctx(), t0, 0), "inbound", "customer")
        if x < 0.92:
            return (*self._routed(EMAIL, self._email_ctx(), t0, 0), "inbound", "customer")
        if x < 0.97:
            return (*self._routed(CALLBACK, self._callback_ctx(), t0, 0), "inbound", "customer")
        return (*self._routed(CHAT, self._chat_ctx(), t0, 0), "inbound", "customer")

    # -- per-media session fields shared by every session of the conversation --------------------

    def _phone(self) -> str:
        r = self._r
        return f"tel:+1{200 + int(r() * 800)}{int(r() * 10_000_000):07d}"

    def _person(self) -> str:
        name: str = self._pick(PEOPLE)
        return name

    def _voice_ctx(self) -> Record:
        self._customer_name = self._pick(_CALLER_NAMES) if self._r() < 0.5 else self._person()
        number = self._pick(self._org.numbers)
        return {"ani": self._phone(), "direction": "inbound", "dnis": number,
                "edgeId": self._pick(self._org.edges), "mediaType": "voice", "provider": "Edge",
                "sessionDnis": number}  # fmt: skip

    def _campaign_ctx(self) -> Record:
        self._customer_name = self._person()
        campaign, contact_list = self._pick(self._org.campaigns)
        return {"ani": self._pick(self._org.numbers), "direction": "outbound",
                "dnis": self._phone(), "edgeId": self._pick(self._org.edges),
                "mediaType": "voice", "outboundCampaignId": campaign,
                "outboundContactId": self._take_ids(1)[0],
                "outboundContactListId": contact_list, "provider": "Edge"}  # fmt: skip

    def _message_ctx(self) -> Record:
        self._customer_name = self._person()
        return {"addressFrom": self._phone(), "addressTo": self._pick(self._org.numbers),
                "direction": "inbound", "mediaType": "message",
                "messageType": self._pick(_MESSAGE_TYPES),
                "provider": _PROVIDERS["message"]}  # fmt: skip

    def _email_ctx(self) -> Record:
        self._customer_name = name = self._person()
        address = f"{name.replace(' ', '.').lower()}{int(self._r() * 100)}@example.com"
        return {"addressFrom": address, "addressTo": "support@sandbox.example.com",
                "direction": "inbound", "mediaType": "email",
                "provider": _PROVIDERS["email"]}  # fmt: skip

    def _callback_ctx(self) -> Record:
        self._customer_name = name = self._person()
        return {"callbackNumbers": [self._phone()], "callbackUserName": name,
                "direction": "inbound", "mediaType": "callback",
                "provider": _PROVIDERS["callback"]}  # fmt: skip

    def _chat_ctx(self) -> Record:
        self._customer_name = self._person()
        return {"direction": "inbound", "mediaType": "chat", "provider": _PROVIDERS["chat"]}

    # -- routed conversations: customer -> flow -> queue -> agent (-> queue -> agent) ------------

    def _routed(
        self, m: Media, ctx: Record, t0: int, dial_ms: int
    ) -> tuple[list[Record], int, bool]:
        """Participants, end instant and self-served flag of a routed conversation."""
        r = self._r
        t = t0 + dial_ms + 50 + int(r() * 400)
        flow_end = t + m.flow_ms[0] + int(r() * (m.flow_ms[1] - m.flow_ms[0]))
        flow_end_at = self._fmt(flow_end)
        served = m.flow_type is not None and r() < m.self_served
        legs = [] if served else self._legs(m, flow_end, flow_end_at)
        # A participant id and a session id for the customer, the flow and every acd and agent.
        ids = iter(self._take_ids(4 + 4 * len(legs)))
        customer_ids = [next(ids), next(ids)]
        peer = customer_ids[1]
        middle = []
        if m.flow_type is not None:
            target = legs[0].queue[1] if legs else None
            span = (t, flow_end, flow_end_at)
            middle.append(self._flow(m, ctx, [next(ids), next(ids)], peer, span, target))
        agent_hangs_up = r() < 0.35
        for n, leg in enumerate(legs):
            middle.append(self._acd(m, ctx, [next(ids), next(ids)], peer, leg))
            if not leg.abandoned:
                self.handling.add(leg.agent, leg.alert, leg.wrap_end)
                last = n == len(legs) - 1
                hang = ("client" if agent_hangs_up else "peer") if last else "transfer"
                middle.append(self._agent(m, ctx, [next(ids), next(ids)], peer, leg, hang))
        if served:
            customer_end, customer_end_at = flow_end, flow_end_at
        elif legs[-1].abandoned:
            customer_end, customer_end_at = legs[-1].answer, legs[-1].answer_at
        else:
            customer_end, customer_end_at = legs[-1].talk_end, legs[-1].talk_end_at
        hung_up = "peer" if legs and not legs[-1].abandoned and agent_hangs_up else "endpoint"
        holds = [leg.hold for leg in legs if leg.hold is not None]
        customer = self._customer(m, ctx, customer_ids, (t0, t0 + dial_ms, customer_end),
                                  customer_end_at, holds, hung_up)  # fmt: skip
        end = max([customer_end] + [leg.wrap_end for leg in legs if not leg.abandoned])
        return [customer, *middle], end, served

    def _legs(self, m: Media, t: int, t_at: str) -> list[_Leg]:
        """One queue/agent stint, two when the first agent transfers."""
        r, f, queues = self._r, self._fmt, self._org.queues
        legs: list[_Leg] = []
        for n in range(2 if r() < m.transfer else 1):
            q = int(r() * len(queues))
            queue = queues[q]
            self._divisions.append(queue[2])
            answer = t + 500 + m.waits[int(r() * QUANTILES)] + int(r() * 1_000)
            answer_at = f(answer)
            if n == 0 and r() < m.abandon:
                return [_Leg(queue, -1, t, t_at, answer, answer, answer_at, None, answer,
                             answer_at, answer, True)]  # fmt: skip
            alert = max(t, answer - 2_000 - int(r() * 13_000))
            agent = self._pick(self._schedule.answerers(q, alert))
            talk = m.talks[int(r() * QUANTILES)] + int(r() * 1_000)
            hold = None
            if r() < m.hold:
                start = answer + int(talk * 0.8 * r())
                hold = (start, start + 10_000 + int(r() * 170_000))
                talk += hold[1] - hold[0]
            wrap_end = answer + talk + 5_000 + int(r() * r() * 175_000)
            talk_end, talk_end_at = answer + talk, f(answer + talk)
            legs.append(_Leg(queue, agent, t, t_at, alert, answer, answer_at, hold, talk_end,
                             talk_end_at, wrap_end))  # fmt: skip
            t, t_at = talk_end, talk_end_at
        return legs

    def _customer(self, m: Media, ctx: Record, ids: list[str], times: tuple[int, int, int],
                  last: str, holds: list[tuple[int, int]], disconnect: str) -> Record:  # fmt: skip
        """`times` = (start, end of dialing, end); `last` = the end, formatted."""
        f = self._fmt
        t0, talk_from, end = times
        cursor = f(t0)
        segments = []
        if talk_from > t0:  # a campaign dials the customer first
            segments.append({"segmentStart": cursor, "segmentEnd": f(talk_from),
                             "segmentType": "dialing"})  # fmt: skip
            cursor = segments[-1]["segmentEnd"]
        for start, stop in holds:
            a, b = f(start), f(stop)
            segments.append({"segmentStart": cursor, "segmentEnd": a, "segmentType": "interact"})
            segments.append({"segmentStart": a, "segmentEnd": b, "segmentType": "hold"})
            cursor = b
        final = {"segmentStart": cursor, "segmentEnd": last, "segmentType": "interact",
                 "disconnectType": disconnect}  # fmt: skip
        if m.media_type == "email":
            final["subject"] = self._pick(_SUBJECTS)
        segments.append(final)
        session: Record = {**ctx, "remote": self._customer_name, "sessionId": ids[1]}
        if m.media_type == "voice":
            session["mediaEndpointStats"] = self._stats(last, end - talk_from)
        session["segments"] = segments
        return {"participantId": ids[0], "participantName": self._customer_name,
                "purpose": "customer", "sessions": [session],
                "attributes": self._pick(self._org.attributes)}  # fmt: skip

    def _stats(self, event_time: str, talk_ms: int) -> list[Record]:
        """One mediaEndpointStats entry; also folds it into the conversation's minimum MOS."""
        r = self._r
        mos, r_factor = quality = self._pick(self._org.quality)
        if self._mos is None or mos < self._mos[0]:
            self._mos = quality
        return [{"codecs": ["audio/opus" if r() < 0.7 else "audio/PCMU"],
                 "discardedPackets": int(r() * r() * 40), "eventTime": event_time,
                 "maxLatencyMs": 20 + int(r() * 180), "minMos": mos, "minRFactor": r_factor,
                 "receivedPackets": max(talk_ms // 20, 1)}]  # fmt: skip

    def _flow(self, m: Media, ctx: Record, ids: list[str], peer: str, span: tuple[int, int, str],
              target: str | None) -> Record:  # fmt: skip
        """The inbound (or campaign) flow over `span` = (start, end, end formatted); `target` is
        the queue it transfers to, None = the conversation ends in the flow."""
        assert m.flow_type is not None
        r = self._r
        flow_id, flow_name, version = self._pick(self._org.flows[m.flow_type])
        s0, s1, took = self._fmt(span[0]), span[2], span[1] - span[0]
        language = self._pick(_LANGUAGES)
        flow: Record = {"endingLanguage": language,
                        "entryReason": ctx.get("dnis") or ctx.get("addressTo", ""),
                        "entryType": m.entry_type,
                        "exitReason": "DISCONNECT" if target is None else "TRANSFER",
                        "flowId": flow_id, "flowName": flow_name, "flowType": m.flow_type,
                        "flowVersion": version, "startingLanguage": language}  # fmt: skip
        metrics = [{"name": "nFlow", "value": 1, "emitDate": s0},
                   {"name": "tFlow", "value": took, "emitDate": s1},
                   {"name": "tFlowDisconnect" if target is None else "tFlowExit", "value": took,
                    "emitDate": s1}]  # fmt: skip
        if target is not None:
            flow.update(transferTargetAddress=target, transferTargetName=target, transferType="ACD")
        if r() < 0.5:
            outcome = self._pick(self._org.outcomes)
            flow["outcomes"] = [{"flowOutcome": f"{outcome}:SUCCESS",
                                 "flowOutcomeEndTimestamp": s1, "flowOutcomeId": outcome,
                                 "flowOutcomeStartTimestamp": s0,
                                 "flowOutcomeValue": "SUCCESS"}]  # fmt: skip
            metrics.append({"name": "nFlowOutcome", "value": 1, "emitDate": s1})
        voice = m.media_type == "voice"
        segment = {"segmentStart": s0, "segmentEnd": s1,
                   "segmentType": "ivr" if voice else "interact",
                   "disconnectType": "peer" if target is None else "transfer"}  # fmt: skip
        session = {**ctx, "peerId": peer, "remote": flow_name, "sessionId": ids[1], "flow": flow,
                   "metrics": metrics, "segments": [segment]}  # fmt: skip
        # [INF] digital flows show up as "workflow" participants, voice flows as "ivr".
        return {"participantId": ids[0], "participantName": flow_name,
                "purpose": "ivr" if voice else "workflow", "sessions": [session]}  # fmt: skip

    def _acd(self, m: Media, ctx: Record, ids: list[str], peer: str, leg: _Leg) -> Record:
        queue_id, queue_name, _ = leg.queue
        s0, s1 = leg.queued_at, leg.answer_at
        waited = leg.answer - leg.queued
        metrics = [{"name": "nOffered", "value": 1, "emitDate": s0},
                   {"name": "tAbandon" if leg.abandoned else "tAcd", "value": waited,
                    "emitDate": s1}]  # fmt: skip
        if waited > 20_000 and not leg.abandoned:
            metrics.append({"name": "nOverSla", "value": 1, "emitDate": s1})
        segment: Record = {"segmentStart": s0, "segmentEnd": s1, "segmentType": "interact",
                           "disconnectType": "peer" if leg.abandoned else "transfer",
                           "queueId": queue_id}  # fmt: skip
        if self._r() < 0.3:
            segment["requestedRoutingSkillIds"] = [self._pick(self._org.skills)]
        if self._r() < 0.2:
            segment["requestedLanguageId"] = self._pick(self._org.languages)
        session = {**ctx, "peerId": peer, "remote": self._customer_name,
                   "requestedRoutings": [m.routing], "sessionId": ids[1], "usedRouting": m.routing,
                   "metrics": metrics, "segments": [segment]}  # fmt: skip
        return {"participantId": ids[0], "participantName": queue_name, "purpose": "acd",
                "sessions": [session]}  # fmt: skip

    def _agent(self, m: Media, ctx: Record, ids: list[str], peer: str, leg: _Leg,
               disconnect: str) -> Record:  # fmt: skip
        f, queue_id = self._fmt, leg.queue[0]
        a0, cursor = f(leg.alert), leg.answer_at
        segments = [{"segmentStart": a0, "segmentEnd": cursor, "segmentType": "alert",
                     "queueId": queue_id}]  # fmt: skip
        held = 0
        if leg.hold is not None:
            h0, h1 = f(leg.hold[0]), f(leg.hold[1])
            segments.append({"segmentStart": cursor, "segmentEnd": h0, "segmentType": "interact",
                             "queueId": queue_id})  # fmt: skip
            segments.append({"segmentStart": h0, "segmentEnd": h1, "segmentType": "hold",
                             "queueId": queue_id})  # fmt: skip
            cursor, held = h1, leg.hold[1] - leg.hold[0]
        te, we = leg.talk_end_at, f(leg.wrap_end)
        segments.append({"segmentStart": cursor, "segmentEnd": te, "segmentType": "interact",
                         "disconnectType": disconnect, "queueId": queue_id})  # fmt: skip
        segments.append(self._wrapup(te, we, queue_id))
        metrics = self._agent_metrics(leg, held, we, disconnect == "transfer")
        session: Record = {**ctx, "peerId": peer, "remote": self._customer_name,
                           "sessionId": ids[1]}  # fmt: skip
        if m.media_type == "voice":
            session["recording"] = True
            session["mediaEndpointStats"] = self._stats(te, leg.talk_end - leg.answer - held)
        session["metrics"], session["segments"] = metrics, segments
        sessions = [session]
        if m.media_type == "callback":
            sessions.append(self._callback_call(ctx["callbackNumbers"][0], leg, disconnect))
        user_id, name, team = self._org.agents[leg.agent]
        return {"participantId": ids[0], "participantName": name, "purpose": "agent",
                "teamId": team, "userId": user_id, "sessions": sessions}  # fmt: skip

    def _wrapup(self, start: str, end: str, queue_id: str) -> Record:
        code = self._pick(self._org.wrapup_codes)
        wrapup = {"segmentStart": start, "segmentEnd": end, "segmentType": "wrapup",
                  "queueId": queue_id, "wrapUpCode": code}  # fmt: skip
        if self._r() < 0.4:
            wrapup["wrapUpNote"] = self._pick(_NOTES)
        return wrapup

    @staticmethod
    def _agent_metrics(leg: _Leg, held: int, wrap_end: str, transferred: bool) -> list[Record]:
        talk, acw = leg.talk_end - leg.answer - held, leg.wrap_end - leg.talk_end
        answered, talk_end = leg.answer_at, leg.talk_end_at
        metrics = [{"name": "tAlert", "value": leg.answer - leg.alert, "emitDate": answered},
                   {"name": "tAnswered", "value": leg.answer - leg.queued, "emitDate": answered},
                   {"name": "nConnected", "value": 1, "emitDate": answered},
                   {"name": "tTalk", "value": talk, "emitDate": talk_end},
                   {"name": "tTalkComplete", "value": talk, "emitDate": talk_end}]  # fmt: skip
        if held:
            metrics.append({"name": "tHeldComplete", "value": held, "emitDate": talk_end})
        if transferred:
            metrics.append({"name": "nTransferred", "value": 1, "emitDate": talk_end})
        metrics.append({"name": "tAcw", "value": acw, "emitDate": wrap_end})
        metrics.append({"name": "tHandle", "value": talk + held + acw, "emitDate": wrap_end})
        return metrics

    def _callback_call(self, number: str, leg: _Leg, disconnect: str) -> Record:
        """The agent's voice session that calls the customer back."""
        f = self._fmt
        dialed = leg.answer + 1_000 + int(self._r() * 20_000)
        d0, d1, d2 = leg.answer_at, f(min(dialed, leg.talk_end)), leg.talk_end_at
        return {"ani": self._pick(self._org.numbers), "direction": "outbound", "dnis": number,
                "edgeId": self._pick(self._org.edges), "mediaType": "voice", "provider": "Edge",
                "sessionId": self._take_ids(1)[0],
                "mediaEndpointStats": self._stats(d2, max(leg.talk_end - dialed, 0)),
                "segments": [{"segmentStart": d0, "segmentEnd": d1, "segmentType": "dialing"},
                             {"segmentStart": d1, "segmentEnd": d2, "segmentType": "interact",
                              "disconnectType": disconnect}]}  # fmt: skip

    # -- agent-initiated outbound call: agent -> external party ----------------------------------

    def _agent_dial(self, t0: int) -> tuple[list[Record], int]:
        r, f, org = self._r, self._fmt, self._org
        ids = self._take_ids(4)
        self._customer_name = self._person()
        ctx = {"ani": self._pick(org.numbers), "direction": "outbound",
               "dnis": self._phone(), "edgeId": self._pick(org.edges), "mediaType": "voice",
               "provider": "Edge"}  # fmt: skip
        dialed = t0 + 500 + int(r() * 2_500)
        answer = dialed + 3_000 + int(r() * 27_000)
        answered = r() < 0.75
        talk = VOICE.talks[int(r() * QUANTILES)] + int(r() * 1_000) if answered else 0
        talk_end = answer + talk
        wrap_end = talk_end + 3_000 + int(r() * r() * 120_000)
        s0, s1, s2, s3, s4 = f(t0), f(dialed), f(answer), f(talk_end), f(wrap_end)
        agent_segments = [
            {"segmentStart": s0, "segmentEnd": s1, "segmentType": "dialing"},
            {"segmentStart": s1, "segmentEnd": s2, "segmentType": "contacting"},
        ]
        external_segments = [{"segmentStart": s1, "segmentEnd": s2, "segmentType": "contacting"}]
        if answered:
            talked = {"segmentStart": s2, "segmentEnd": s3, "segmentType": "interact"}
            external_segments.append({**talked, "disconnectType": "endpoint"})
            agent_segments.append({**talked, "disconnectType": "peer"})
        else:
            external_segments[0]["disconnectType"] = self._pick(("timeout", "endpoint"))
            agent_segments[1]["disconnectType"] = "peer"
        q = int(r() * len(org.queues))
        agent_segments.append(self._wrapup(s3, s4, org.queues[q][0]))
        metrics = [{"name": "nOutbound", "value": 1, "emitDate": s0},
                   {"name": "nOutboundAttempted", "value": 1, "emitDate": s0},
                   {"name": "tDialing", "value": dialed - t0, "emitDate": s1},
                   {"name": "tContacting", "value": answer - dialed, "emitDate": s2}]  # fmt: skip
        if answered:
            metrics += [
                {"name": "nOutboundConnected", "value": 1, "emitDate": s2},
                {"name": "nConnected", "value": 1, "emitDate": s2},
                {"name": "tTalk", "value": talk, "emitDate": s3},
                {"name": "tTalkComplete", "value": talk, "emitDate": s3},
            ]
        metrics += [{"name": "tAcw", "value": wrap_end - talk_end, "emitDate": s4},
                    {"name": "tHandle", "value": wrap_end - t0, "emitDate": s4}]  # fmt: skip
        agent = self._pick(self._schedule.answerers(q, t0))
        self.handling.add(agent, t0, wrap_end)
        user_id, name, team = org.agents[agent]
        agent_session: Record = {**ctx, "recording": answered, "remote": self._customer_name,
                                 "sessionId": ids[1]}  # fmt: skip
        external_session: Record = {**ctx, "peerId": ids[1], "remote": name, "sessionId": ids[3]}
        if answered:
            agent_session["mediaEndpointStats"] = self._stats(s3, talk_end - answer)
            external_session["mediaEndpointStats"] = self._stats(s3, talk_end - answer)
        agent_session["metrics"], agent_session["segments"] = metrics, agent_segments
        external_session["segments"] = external_segments
        agent = {"participantId": ids[0], "participantName": name, "purpose": "agent",
                 "teamId": team, "userId": user_id, "sessions": [agent_session]}  # fmt: skip
        external = {"participantId": ids[2], "participantName": self._customer_name,
                    "purpose": "external", "sessions": [external_session],
                    "attributes": self._pick(self._org.attributes)}  # fmt: skip
        return [agent, external], wrap_end


# -- still-ongoing conversations -----------------------------------------------------------------

_CLOSING_KEYS = ("segmentEnd", "disconnectType", "wrapUpCode", "wrapUpNote")
_FLOW_EXIT_KEYS = ("endingLanguage", "exitReason", "transferTargetAddress", "transferTargetName",
                   "transferType", "outcomes")  # fmt: skip


def truncate_ongoing(record: Record, cut: str) -> None:
    """Turn a finished record into what the API shows at instant `cut`, before it ended.

    `cut` is a timestamp in the records' own format, so plain string comparison orders instants.
    Segments that had not started are dropped, the one in progress loses its end, and metrics
    and stats not yet emitted disappear; sessions and participants left empty go too, and so
    do evaluations and surveys, which come after the end.
    """
    del record["conversationEnd"]
    record.pop("evaluations", None)
    record.pop("surveys", None)
    participants = []
    mos: list[tuple[float, float]] = []
    for participant in record["participants"]:
        sessions = [s for s in participant["sessions"] if _truncate_session(s, cut, mos)]
        if sessions:
            participant["sessions"] = sessions
            participants.append(participant)
    record["participants"] = participants
    record.pop("mediaStatsMinConversationMos", None)
    record.pop("mediaStatsMinConversationRFactor", None)
    later = ("originatingDirection", "participants", "selfServed")
    tail: Record = {key: record.pop(key) for key in later if key in record}
    if mos:  # re-added before `tail`, keeping the API's (alphabetical) key order
        lowest = min(mos)
        record["mediaStatsMinConversationMos"], record["mediaStatsMinConversationRFactor"] = lowest
    record.update(tail)


def _truncate_session(session: Record, cut: str, mos: list[tuple[float, float]]) -> bool:
    segments = [s for s in session["segments"] if s["segmentStart"] <= cut]
    if not segments:
        return False
    session["segments"] = segments
    if segments[-1]["segmentEnd"] > cut:
        for key in _CLOSING_KEYS:
            segments[-1].pop(key, None)
        if "flow" in session:
            for key in _FLOW_EXIT_KEYS:
                session["flow"].pop(key, None)
    for key, field in (("mediaEndpointStats", "eventTime"), ("metrics", "emitDate")):
        kept = [item for item in session.pop(key, ()) if item[field] <= cut]
        if kept:
            session[key] = kept
    mos.extend((s["minMos"], s["minRFactor"]) for s in session.get("mediaEndpointStats", ()))
    session["segments"] = session.pop("segments")  # nested arrays stay last, as in the API
    return True
