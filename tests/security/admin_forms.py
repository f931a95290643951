"""Build the POST data an admin change form would send, from the form Django rendered."""

from __future__ import annotations

from django.forms import BaseForm


def _field_data(form: BaseForm) -> dict:
    data: dict = {}
    for name, field in form.fields.items():
        value = form[name].value()
        key = form.add_prefix(name)
        if value is None:
            continue
        if isinstance(value, list | tuple):
            data[key] = [str(item) for item in value]
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        elif hasattr(field, "widget") and hasattr(field.widget, "widgets") and not isinstance(value, str):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{key}_{index}"] = "" if part is None else str(part)
        else:
            data[key] = str(value)
    return data


def change_form_data(response) -> dict:
    """The data of the main form and every inline, as the browser would post it unchanged."""
    context = response.context
    data = _field_data(context["adminform"].form)
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        data.update(_field_data(formset.management_form))
        for form in formset.forms:
            data.update(_field_data(form))
    return data
