"""player remotes: remotes are not transactions by themselves, so open one."""


def login(app, uid, name, frontend_id):
    Player = app.db.models.Player
    with app.db.transaction():
        player = Player.get_or_create(uid, name=name)
        player.frontend = frontend_id
        return player.to_dict()
