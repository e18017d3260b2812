NOTES = []


def note(app, text):
    NOTES.append(text)


def notes(app):
    return list(NOTES)
