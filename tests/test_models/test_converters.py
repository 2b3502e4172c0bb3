"""The converters' rule tables."""
import pytest


def test_rule_tables_parse_drops_and_refuse_bad_lines():
    from parc_mm.models.converters.core import rule_table
    assert rule_table(r'''
        a\.(\d+)  b.\1
        c\..*     -
    ''') == [(r'a\.(\d+)', r'b.\1'), (r'c\..*', None)]
    with pytest.raises(ValueError, match='needs a regex and a replacement'):
        rule_table('a b c')
