//! Filling the pages' templates: `{{name}}` replaced by an HTML-escaped value, in one pass, so
//! a value can never introduce markup or another placeholder. Must never: insert a value
//! unescaped.

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, safe in text and in a quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `template` with each `{{name}}` of `values` replaced by its escaped value; an unknown
/// placeholder stays as it is.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let Some(end) = from.find("}}") else {
            rest = from;
            break;
        };
        let name = from.get(2..end).unwrap_or_default();
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(&escape_html(value)),
            None => out.push_str(from.get(..end + 2).unwrap_or_default()),
        }
        rest = from.get(end + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_never_filled_twice() {
        let page = fill(
            "<p title=\"{{a}}\">{{b}} {{c}} {{a}}</p>{{",
            &[("a", "\"><script>x</script>"), ("b", "{{a}} & 'q'")],
        );
        assert_eq!(
            page,
            "<p title=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\">{{a}} &amp; &#39;q&#39; {{c}} \
             &quot;&gt;&lt;script&gt;x&lt;/script&gt;</p>{{"
        );
    }
}
