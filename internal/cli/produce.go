package cli

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func produceCommand() *cli.Command {
	return &cli.Command{
		Name:  "produce",
		Usage: "generate load: ratings or visits",
		Subcommands: []*cli.Command{
			{Name: "ratings", Usage: "send ratings to the ratings topic", Action: func(*cli.Context) error { return errors.New("produce ratings: not implemented yet") }},
			{Name: "visits", Usage: "send visits to the visits topic", Action: func(*cli.Context) error { return errors.New("produce visits: not implemented yet") }},
		},
	}
}
