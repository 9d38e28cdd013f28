"""The fixed built-in vocabulary the mock's text is drawn from.

The words never change between versions without a reason: the text of a response is a
pure function of (seed, request body) and of this list. A few words are not ASCII
(``café``, ``naïve``, ``über``, ``façade``, ``jalapeño``, ``日本``, ``🌊``), so a byte split
can cut a multi-byte character and a client's UTF-8 handling is exercised.
"""

from __future__ import annotations

__all__ = ["WORDS"]

_TEXT = """
    the of and to in is that for it as was with be by on not he this are or his from
    at which but have an they you were her she there been one all we their has would
    when if so no what up out who them some could into its then two more these time
    only other new may first like over such also after our any most very through
    model token stream server client event data request response latency signal
    queue buffer packet socket thread kernel memory cache layer vector matrix weight
    batch prompt answer reason result value number string field record window frame
    river mountain forest garden ocean island valley desert meadow harbor canyon
    morning evening winter summer autumn spring season weather thunder rain snow
    light shadow color silver golden purple orange yellow green blue red white black
    quick slow bright quiet gentle steady careful simple clear honest early late
    small large ancient modern distant nearby hidden open closed warm cold fresh
    build measure compare follow carry gather listen notice travel wander balance
    write read send receive store retry parse encode decode count schedule deliver
    apple bread cheese honey lemon olive pepper rice salt sugar tea coffee water
    bridge castle tower village market station library school museum theater
    engine wheel anchor compass lantern mirror ribbon ladder pencil paper letter
    circle square triangle spiral arrow line point curve angle edge corner center
    north south east west above below between around beyond within without toward
    always never often sometimes usually rarely again still already perhaps maybe
    because although while until unless since whether though yet nor either
    teacher student doctor farmer sailor painter writer builder driver pilot
    friend family neighbor stranger visitor traveler partner leader member guest
    idea story question problem method system pattern design detail example
    history future moment minute second hour day week month year century
    music poem song dance picture canvas sculpture melody rhythm harmony chorus
    planet comet galaxy orbit star moon sun cloud wind storm wave tide stone
    café naïve über façade jalapeño 日本 🌊
"""

WORDS: tuple[str, ...] = tuple(_TEXT.split())
